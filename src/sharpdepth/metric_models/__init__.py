"""Metric depth models (the f_D role) behind one interface."""
