"""The service catalogue (service types and their forms); owns `service_types`."""
