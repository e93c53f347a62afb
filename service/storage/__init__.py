"""MongoDB and Redis access: repositories, indexes, the embedded server, error translation."""
