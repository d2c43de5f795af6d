"""department_directory: a CSV dropped in S3 becomes one nested DynamoDB item per department."""
