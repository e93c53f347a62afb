"""Photo uploads; owns the GridFS bucket `uploads`."""
