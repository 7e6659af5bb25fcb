"""Custom layers of the zoo. Each is registered with Keras under the package "keras_cnns", serialises
through get_config, and loads with safe_mode on once this package is imported (see keras_cnns/__init__.py)."""

import importlib
import inspect
import pkgutil

import keras

__all__ = []
for _module in pkgutil.iter_modules(__path__):
    if _module.name.startswith("_"):
        continue
    _mod = importlib.import_module(f"{__name__}.{_module.name}")
    for _name, _obj in vars(_mod).items():
        if (inspect.isclass(_obj) and issubclass(_obj, keras.layers.Layer)
                and _obj.__module__ == _mod.__name__ and not _name.startswith("_")):
            globals()[_name] = _obj
            __all__.append(_name)
