"""Training: datasets (:mod:`.data`), fine-tuning ImageNet backbones and own CNNs from scratch (:mod:`.finetune`)."""
