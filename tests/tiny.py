"""A tiny random Llama with FP16-valued linear weights, for fast tests of the PyTorch workload side."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from specsim.workload.models import round_linear_weights_to_fp16


def tiny_llama(vocab=97, hidden=64, layers=2, init=0.3, seed=0):
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=init,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    round_linear_weights_to_fp16(model)
    return model
