"""Experiment lots: a batch (or several) split into arms of recipe setpoints or material lots,
each arm served its own frozen recipe version, and the arms' outcomes compared with statistics."""
