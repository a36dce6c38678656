"""The community portal: pharmaceutical interviews, medication reconciliation, GP and nurse visits."""
