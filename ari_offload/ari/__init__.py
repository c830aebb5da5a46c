"""The control plane: ARI REST and events, call set-up and teardown, the call controller."""
