"""marshmallow schemas: what the API reads and writes, and the source of the OpenAPI document."""
