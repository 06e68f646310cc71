"""TFusion-TFX: unsupervised cross-dataset person re-ID as a TFX pipeline.

Install with `make venv` (or see README): tfx 1.16 declares Requires-Python < 3.11
but is pure Python and works on 3.11, so the pinned set in constraints.txt is
installed with `pip install --ignore-requires-python --no-deps -r constraints.txt`.
"""
from setuptools import setup

REQUIRES = [
    "tfx==1.16.0",
    "ml-pipelines-sdk==1.16.0",
    "tensorflow==2.16.2",
    "tf_keras==2.16.0",
    "tensorflow-transform==1.16.0",
    "tensorflow-model-analysis==0.47.1",
    "tensorflow-data-validation==1.16.1",
    "tensorflow-serving-api==2.16.1",
    "tfx-bsl==1.16.1",
    "ml-metadata==1.16.0",
    "apache-beam[gcp]==2.61.0",
    "numpy>=1.26,<2",
    "scipy<1.13",
    "pillow",
    "matplotlib",
]

setup(
    name="tfusion-tfx",
    version="0.1.0",
    description="Unsupervised cross-dataset person re-identification (TFusion) on TFX",
    python_requires=">=3.9",
    packages=["core", "pipeline", "pipeline.commands", "pipeline.components", "trainer",
              "trainer.module", "st_model", "schemas", "synth"],
    package_data={"schemas": ["*.pbtxt"]},
    install_requires=REQUIRES,
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": ["tfusion=pipeline.cli:main"]},
)
