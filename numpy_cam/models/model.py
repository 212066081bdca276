"""``Model``: a CAM-ready network, its arrays and its architecture's pure functions.

x (N, 3, H, W) -> ``features`` f_k (N, K, h, w) (paper Sec. 2) -> ``classify``: global
pooling F_k (N, K) and the FC layer S_c (N, classes), whose weights w_k^c CAM uses
(``fc_weight``, ``fc_bias``). Built by ``numpy_cam.models.load_model``.

What x may be (``Model.features``, ``Model.stages``): any finite float32 or float64 array of
shape (N, 3, H, W) with N, H, W >= 1. The dtype goes through: float32 in, float32 out (the
weights are float32, so this is the reference computation); float64 in, float64 out (the
same float32 weights, float64 arithmetic). x need not be what ``preprocess`` makes: scaled,
noisy or otherwise normalised inputs are computed as given. Every shipped architecture pads
its convolutions and pools ("same" or explicit padding), so any H, W >= 1 fits; below 33
pixels the stride-32 networks give 1 x 1 maps.

Refused, with the hint "use Model.preprocess", because they look like images rather than x:
an integer dtype such as uint8 (TypeError), the (H, W, 3) or (N, H, W, 3) layout (ValueError).
Warned about (UserWarning; the computation still runs): float values that look like pixels
on the 0..255 scale, min(x) >= 0 and max(x) > 2 * hi, with hi the largest value preprocessing
can give (``io.image.input_range``: 1.0 for EfficientNet-Lite, 2.64 for the torchvision
ResNets). Why a warning and not an error or nothing: it is the most common mistake (a photo
converted to float and transposed, but not normalised), it gives a confident wrong answer and
no error, and a warning says so without refusing the rare input meant that way (silence it
with ``warnings.filterwarnings``). Why this bound: a preprocessed photo is mean-subtracted,
so any pixel darker than the mean is negative and min(x) >= 0 fails; x scaled by up to 2
stays at or below 2 * hi; a photo on the 0..255 scale has pixels far above 2 * hi (on
EfficientNet-Lite only a photo darker than 3 / 255 everywhere would not warn). For a
Caffe-style network (Keras ResNet50: mean subtraction only, hi = 151) the bound is above 255
and nothing warns.

Other layer functions: ``load_model(name, layers={"conv2d": my_conv2d})`` or
``model.with_layers(conv2d=my_conv2d)`` gives a model whose forward pass (``features``,
``stages``, ``classify``, ``predict``) calls ``my_conv2d`` wherever the reference calls
``layers.conv2d``; the names that can be replaced are ``conv_bn.Layers._fields`` (conv2d,
relu, relu6, max_pool2d, global_avg_pool, global_max_pool, linear). Nothing global changes:
other models, and ``numpy_cam.layers`` itself, still use the reference.
"""
import copy
import warnings
from importlib import resources

import numpy as np

from .._checks import check_array
from ..cam import _top_classes, checked_top_k
from ..io.image import input_range, preprocess
from ..layers import global_avg_pool, global_max_pool, softmax
from .conv_bn import REFERENCE_LAYERS, layer_set

POOLING = {"avg": global_avg_pool, "max": global_max_pool}      # each one's __name__ is its conv_bn.Layers field


class Model:
    """A CAM-ready network: conv features f_k -> global average pooling -> FC (-> softmax).

    Attributes
    ----------
    name : str
    architecture : str
    fc_weight : ndarray of shape (classes, K), float32 -- the paper's w_k^c
    fc_bias : ndarray of shape (classes,), float32 -- b_c (the paper sets it to 0)
    class_names : tuple of str, one per class
    preprocessing : dict (see ``numpy_cam.io.image.preprocess``)
    metadata : dict, where the weights came from
    layers : conv_bn.Layers, the layer functions the forward pass calls (the reference ones
        unless replaced: ``with_layers``)
    """

    def __init__(self, name, architecture, state_dict, metadata, layers=None):
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
        self._layers = None if layers is None else layer_set(layers)   # None: each architecture's own

    @property
    def layers(self):
        """The layer functions the forward pass calls (``conv_bn.Layers``)."""
        return REFERENCE_LAYERS if self._layers is None else self._layers

    def with_layers(self, **layers):
        """The same model (the same arrays, not copied) calling other layer functions.

        ``model.with_layers(conv2d=my_conv2d).predict(photo)`` runs the network with
        ``my_conv2d`` in every convolution. Keywords: the names of ``conv_bn.Layers``, each a
        function with the signature of the one of that name in ``numpy_cam.layers``; the
        layers not named stay as in this model. TypeError / ValueError for a value that is
        not a function or an unknown name.
        """
        other = copy.copy(self)
        other._layers = layer_set(layers, base=self.layers)
        return other

    @property
    def num_classes(self):
        return self.fc_weight.shape[0]

    @property
    def num_maps(self):
        """K, the number of feature maps f_k."""
        return self.fc_weight.shape[1]

    def __repr__(self):
        return (f"Model({self.name!r}, architecture={self.architecture!r}, "
                f"classes={self.num_classes}, K={self.num_maps})")

    def preprocess(self, image):
        """image (path, PIL image or (H, W, 3) uint8) -> x of shape (1, 3, size, size) float32."""
        return preprocess(image, self.preprocessing)

    def features(self, x):
        """The last conv maps f_k after their activation: x (N, 3, H, W) -> f (N, K, h, w).

        x : ndarray of shape (N, 3, H, W), float32 or float64, finite; f has x's dtype (the
        module docstring says what is refused and what is warned about).
        """
        return self._features(self._check_x(x))

    def _features(self, x):
        for name, y in self._arch.iter_stages(self._params, x, self._layers):
            if name == "features":                                          # the last stage
                return y

    def stages(self, x):
        """Every stage's output, name -> array (NCHW), ending with "features" and "logits".

        x as in ``features``; every stage has x's dtype.
        """
        out = dict(self._arch.iter_stages(self._params, self._check_x(x), self._layers))
        out["logits"] = self._classify(out["features"])
        return out

    def classify(self, f):
        """Global pooling (F_k) then the FC layer (S_c): f (N, K, h, w) -> logits (N, classes).

        f : float32 or float64; the logits have its dtype. The pooling is the architecture's:
        average (GAP) or, for the GMP baseline, max.
        """
        return self._classify(check_array("features", f, f"(N, {self.num_maps}, h, w)"))

    def _classify(self, f):
        pool = getattr(self.layers, POOLING[self.pooling].__name__)        # the reference's, or its replacement
        return self.layers.linear(pool(f), self.fc_weight, self.fc_bias)  # (N, classes)

    def predict(self, image, top_k=None):
        """The top-k classes of one image as a list of (index, name, probability), best first.

        top_k : int in 1..classes, or None: min(5, classes).
        """
        top_k = checked_top_k(top_k, self.num_classes)
        probs = softmax(self._classify(self._features(self.preprocess(image))))[0]  # (classes,)
        return [(int(i), self.class_names[i], float(probs[i])) for i in _top_classes(probs, top_k)]

    def _check_x(self, x):
        """x, checked as the module docstring says."""
        hint = " (an image? use Model.preprocess)"
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
            raise TypeError(f"x must have dtype float32 or float64; got {x.dtype}{hint}")
        if isinstance(x, np.ndarray) and (x.ndim == 3 or x.ndim == 4 and x.shape[3] == 3 != x.shape[1]):
            raise ValueError(f"x must have shape (N, 3, H, W); got {x.shape}{hint}")
        check_array("x", x, "(N, 3, H, W)", kinds="", dtypes=(np.float32, np.float64), nonempty=True, finite=True)
        lo, hi = input_range(self.preprocessing)
        x_min, x_max = float(x.min()), float(x.max())
        if x_min >= 0 and x_max > 2 * hi:
            warnings.warn(f"x looks like pixels on the 0..255 scale: values in [{x_min:.4g}, {x_max:.4g}], where "
                          f"preprocessed values lie in [{lo:.4g}, {hi:.4g}] for this model (use Model.preprocess)",
                          UserWarning, stacklevel=3)
        return x


GENERIC_NAME = "class {}"           # the name of class i when none are given: "class 0", "class 1", ...


def generic_class_names(num_classes):
    """The names of a model exported without names: ["class 0", "class 1", ...]."""
    return [GENERIC_NAME.format(i) for i in range(num_classes)]


def class_names_for(source, num_classes):
    if source == "imagenet" or source is None and num_classes == 1000:
        text = resources.files("numpy_cam").joinpath("data/imagenet_classes.txt").read_text("utf-8")
        names = tuple(text.splitlines())
    elif isinstance(source, (list, tuple)):
        names = tuple(str(n) for n in source)
    else:
        names = tuple(generic_class_names(num_classes))
    if len(names) != num_classes:
        raise ValueError(f"the model has {num_classes} classes but {len(names)} class names")
    return names


