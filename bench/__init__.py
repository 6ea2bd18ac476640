"""The relay's benchmark: `python3 bench/run.py` starts its own servers and prints figures beside their floors."""
