"""Release checks before a model leaves (``release`` section): reject, review or release."""
