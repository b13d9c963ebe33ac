"""The cohort boundary: the file format (schema), reading, column mapping, validation and outcome targets."""
