"""A synthetic MUSE instrument: raw frames in MUSE's archive format that the real recipes reduce.

No real MUSE data or ESO static calibration can be downloaded where this project is built and tested,
so tests and the demo run the real recipes on frames written here with astropy.
"""
