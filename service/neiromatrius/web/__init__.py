"""What the API and the listener's status server share: error table, bearer tokens, ``/metrics``, database check."""
