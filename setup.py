"""Install ssljax: `pip install -e .[test]`.

Add `[notebook]` for JupyterLab and TensorBoard, `[tf]` for TensorFlow-backed TFDS paths.
"""

from setuptools import find_packages, setup

# The stack is bounded so that a fresh machine resolves the versions the code
# and its tests were written against: the lower bounds are the tested releases,
# the upper bounds exclude the next minor release of each (JAX-stack APIs move).
INSTALL_REQUIRES = [
    "jax>=0.10.2,<0.11",
    "jaxlib>=0.10.2,<0.11",
    "flax>=0.12.8,<0.13",
    "optax>=0.2.8,<0.3",
    "chex>=0.1.92,<0.2",
    "ml_collections>=1.1.0,<2",
    "tensorflow-datasets>=4.9.10,<5",
    "importlib_resources>=6",  # TFDS needs it at run time but does not declare it.
    "pillow>=10",
    # The ImageNet host crops' resize (ssljax/data/crops.py, ~10x faster than Pillow's).
    "opencv-python-headless>=4.10",
    "orbax-checkpoint>=0.12.8,<0.13",
    "grain>=0.2.18,<0.3",
    "dm-pix>=0.4.5,<0.5",
    "tqdm>=4.66",
    "tensorboardX>=2.6,<3",
    "matplotlib>=3.8",
    "numpy>=1.26,<3",
    "scipy>=1.11",
    "absl-py>=2",
]

EXTRAS = {
    "test": ["pytest>=8", "pytest-xdist>=3.5", "scikit-learn>=1.4", "dit>=2.3", "nbclient>=0.10",
             "simplejpeg>=1.7",  # both decoders of ssljax/data/crops.py are tested
             "nbformat>=5.10", "ipykernel>=6.29", "pytest-timeout>=2.3"],
    # Only for tfds.load / tf.data paths (building TFDS's own datasets); ~1.4 GB.
    "tf": ["tensorflow-cpu>=2.17"],
    # libjpeg-turbo decoding at n/8 scales for the ImageNet host crops (ssljax/data/crops.py);
    # without it Pillow decodes (~10 % slower decode, scales 1, 1/2, 1/4, 1/8 only).
    "jpeg": ["simplejpeg>=1.7"],
    # Opening experiments/notebooks/quickstart.ipynb (`jupyter lab`) and a run's
    # tensorboard/ folder (`tensorboard --logdir runs`); the notebook itself
    # needs only the core install.
    "notebook": ["jupyterlab>=4.2", "tensorboard>=2.17"],
}

setup(
    name="ssljax",
    version="0.1.0",
    description="Information-theoretic self-supervised learning in JAX/Flax",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ssljax", "ssljax.*"]),
    package_data={"ssljax.data": ["*.txt"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    license="Apache-2.0",
)
