"""``Model``: a CAM-ready network, its arrays and its architecture's pure functions.

x (N, 3, H, W) -> ``features`` f_k (N, K, h, w) (paper Sec. 2) -> ``classify``: global
pooling F_k (N, K) and the FC layer S_c (N, classes), whose weights w_k^c CAM uses
(``fc_weight``, ``fc_bias``). Built by ``numpy_cam.models.load_model``.
"""
from importlib import resources

import numpy as np

from ..cam import top_classes
from ..io.image import input_range, preprocess
from ..layers import global_avg_pool, global_max_pool, linear, softmax

POOLING = {"avg": global_avg_pool, "max": global_max_pool}


class Model:
    """A CAM-ready network: conv features f_k -> global average pooling -> FC (-> softmax).

    Attributes
    ----------
    name : str
    architecture : str
    fc_weight : ndarray of shape (classes, K), float32 -- the paper's w_k^c
    fc_bias : ndarray of shape (classes,), float32 -- b_c (the paper sets it to 0)
    class_names : tuple of str, one per class
    preprocessing : dict (see ``numpy_cam.image.preprocess``)
    metadata : dict, where the weights came from
    """

    def __init__(self, name, architecture, state_dict, metadata):
        self.name = name
        self.architecture = architecture
        from . import ARCHITECTURES                 # the registry, in models/__init__.py
        self._arch, self.pooling = ARCHITECTURES[architecture]
        self.metadata = dict(metadata)
        self.preprocessing = dict(metadata.get("preprocessing") or self._arch.PREPROCESSING)
        self._params = self._arch.fold_params(state_dict)
        self.fc_weight = np.ascontiguousarray(state_dict[self._arch.FC_WEIGHT], np.float32)
        self.fc_bias = np.ascontiguousarray(state_dict[self._arch.FC_BIAS], np.float32)
        self.class_names = class_names_for(metadata.get("class_names"), self.fc_weight.shape[0])

    @property
    def num_classes(self):
        return self.fc_weight.shape[0]

    def __repr__(self):
        return (f"Model({self.name!r}, architecture={self.architecture!r}, "
                f"classes={self.num_classes}, K={self.fc_weight.shape[1]})")

    def preprocess(self, image):
        """image (path, PIL image or (H, W, 3) uint8) -> x of shape (1, 3, size, size) float32."""
        return preprocess(image, self.preprocessing)

    def features(self, x):
        """The last conv maps f_k after their activation: x (N, 3, H, W) -> f (N, K, h, w)."""
        for _, y in self._arch.iter_stages(self._params, self._check_x(x)):
            pass                                                            # the last stage is "features"
        return y

    def stages(self, x):
        """Every stage's output, name -> array (NCHW), ending with "features" and "logits"."""
        out = dict(self._arch.iter_stages(self._params, self._check_x(x)))
        out["logits"] = self.classify(out["features"])
        return out

    def classify(self, f):
        """Global pooling (F_k) then the FC layer (S_c): f (N, K, h, w) -> logits (N, classes).

        The pooling is the architecture's: average (GAP) or, for the GMP baseline, max.
        """
        k = self.fc_weight.shape[1]
        if not isinstance(f, np.ndarray) or f.ndim != 4 or f.shape[1] != k:
            raise ValueError(f"features must have shape (N, {k}, h, w); got {getattr(f, 'shape', type(f).__name__)}")
        return linear(POOLING[self.pooling](f), self.fc_weight, self.fc_bias)

    def predict(self, image, top_k=5):
        """The top-k classes of one image as a list of (index, name, probability), best first."""
        if not 1 <= int(top_k) <= self.num_classes:
            raise ValueError(f"top_k must be between 1 and {self.num_classes}; got {top_k}")
        probs = softmax(self.classify(self.features(self.preprocess(image))))[0]  # (classes,)
        order = top_classes(probs, top_k)                                      # (top_k,)
        return [(int(i), self.class_names[i], float(probs[i])) for i in order]

    def _check_x(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a NumPy array of shape (N, 3, H, W); got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3, H, W); got {x.shape}"
                             + (" (an image? use Model.preprocess)" if x.ndim == 3 else ""))
        if x.dtype != np.float32:
            raise ValueError(f"x must have dtype float32; got {x.dtype}")
        if x.shape[2] < 1 or x.shape[3] < 1 or x.shape[0] < 1:
            raise ValueError(f"x must not be empty; got shape {x.shape}")
        lo, hi = input_range(self.preprocessing)
        x_min, x_max = float(x.min()), float(x.max())
        if not (np.isfinite(x_min) and np.isfinite(x_max)):
            raise ValueError("x must be finite; it holds NaN or infinity")
        slack = 0.1 * (hi - lo)                     # room for augmentation; 0..255 values fail
        if x_min < lo - slack or x_max > hi + slack:
            raise ValueError(f"x must be preprocessed (values in [{lo:.4g}, {hi:.4g}] for this model); "
                             f"got values in [{x_min:.4g}, {x_max:.4g}] (use Model.preprocess)")
        return x


def class_names_for(source, num_classes):
    if source == "imagenet" or source is None and num_classes == 1000:
        text = resources.files("numpy_cam").joinpath("data/imagenet_classes.txt").read_text("utf-8")
        names = tuple(text.splitlines())
    elif isinstance(source, (list, tuple)):
        names = tuple(str(n) for n in source)
    else:
        names = tuple(f"class {i}" for i in range(num_classes))
    if len(names) != num_classes:
        raise ValueError(f"the model has {num_classes} classes but {len(names)} class names")
    return names


