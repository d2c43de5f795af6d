"""market_orders: ESI market orders downloaded page by page, aggregated per type, into DynamoDB."""
