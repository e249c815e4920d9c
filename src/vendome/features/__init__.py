"""Item features: offline image and text encoders, the content-hash embedding cache, and `attach_features`.

    from vendome.features.embeddings import attach_features
    data = attach_features(data, ws)      # item_features["image"], ["text"] and their "*_missing" masks

Modules: `mobilenet_v2` and `efficientnet_lite0` (the networks), `image` and `text` (encoders behind one interface,
with local CLIP/SigLIP loaders), `cache` (content-addressed vectors), `embeddings` (per-catalog matrices).
Nothing is imported here, so `import vendome.features` stays cheap (torch loads only when encoding).
"""
