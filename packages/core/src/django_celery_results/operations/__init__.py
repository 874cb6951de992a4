"""What the admin does to task results: retry, revoke, terminate and delete, as jobs."""
