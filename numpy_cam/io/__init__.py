"""Input and output at the edges of the package: nothing here computes CAM.

    checkpoint.py  safe reading of PyTorch checkpoints (no torch, no code run); the project's .npz format
    export.py      PyTorch checkpoints and Keras models -> the .npz format (``numpy-cam export``)
    image.py       Pillow <-> NumPy: load (EXIF orientation, any mode), crop, resize, normalise; PNG writing
"""
