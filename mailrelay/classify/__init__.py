"""Inbound -> Classification: the signals, the signature reader, the reference data and the detectors."""
from mailrelay.classify.classifier import classify

__all__ = ["classify"]
