"""The theory beside the attacks: f-DP accounting, risks read off a trade-off curve, noise
calibration to a risk target, and the DP guarantee a model claims."""
