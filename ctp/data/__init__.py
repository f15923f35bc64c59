"""Offline data shared by every task: the Minari folder, the catalog, normalising, windows and
their inpainting condition."""
