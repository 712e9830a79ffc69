"""imstags: a self-hostable implementation of the IMS image-tag API and its image catalog."""

__version__ = "0.1.0"
