"""Decomposition backends, installed as ``layerctl.backends``; see base.py for the contract."""
