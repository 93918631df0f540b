"""Distribution inference: can an attacker tell which share of a property the training
data held? (``distribution`` section)."""
