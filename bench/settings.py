"""Benchmark settings: the production settings plus a baseline view that never ships."""

from contactcenter.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
