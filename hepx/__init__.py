"""hepx: a compute marketplace for high-energy physics and AI, coordinated by smart contracts."""

__version__ = "0.1.0"
