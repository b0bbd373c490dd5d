from setuptools import setup

# Everything declarative lives in pyproject.toml; setup.py only wires the cffi build.
setup(cffi_modules=["build_native.py:ffibuilder"])
