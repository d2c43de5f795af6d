"""DynamoDB: the offline stack's additions to moto's DynamoDB."""
