"""The networks themselves, with torchvision-compatible state-dict keys: VGG16/19, GoogLeNet, Inception v3,
EfficientNet-Lite0, YAMNet, and the own architectures that `mmdream train` builds (trained)."""
