"""Process lifecycle: app factory, runner, supervisor, shutdown, timeouts, worker state and pool."""
