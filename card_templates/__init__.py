"""The dataset card template, shipped as the package data of `hf_nuggets.card_templates`."""
