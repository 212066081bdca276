"""Shared test set-up: tests/ on sys.path so that torch_models (torch only) can be imported."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
