"""What every Loket process shares: settings, secrets handling, logging."""
