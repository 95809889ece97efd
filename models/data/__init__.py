"""Offline data: sample clip and training material made from public-domain face photos."""
