"""Shared test configuration: Hypothesis settings and the reference module on sys.path.

The exact rational reference lives in tests/reference.py; the format lists the codec
tests walk are defined there too (EXHAUSTIVE_FORMATS, WIDE_FORMATS, ...).
"""
import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# No deadline: the exact reference is slow by design and CI machines vary.
settings.register_profile(
    "fmtlab", deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("FMTLAB_HYPOTHESIS_PROFILE", "fmtlab"))
