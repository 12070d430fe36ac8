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


def tiny_gemma3(vocab=97, hidden=64, layers=4, window=4, init=0.02, seed=0):
    """A tiny random Gemma 3 (q/k norms, pre/post norms, GELU MLP, head_dim 32 != hidden / heads) whose
    layers alternate a ``window``-token sliding window with full attention (every 2nd layer full), so short
    prompts already run past the window."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    cfg = Gemma3TextConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=32,
        query_pre_attn_scalar=32,
        sliding_window=window,
        layer_types=["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(layers)],
        max_position_embeddings=512,
        initializer_range=init,
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(cfg).eval()
    round_linear_weights_to_fp16(model)
    return model


def tiny_mistral(vocab=97, hidden=64, layers=2, window=4, init=0.3, seed=0):
    """A tiny random Mistral: Llama's layers with a ``window``-token sliding window in every layer (its
    config sets ``sliding_window`` and no ``layer_types``), so short prompts already run past the window."""
    from transformers import MistralConfig, MistralForCausalLM

    cfg = MistralConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=window,
        max_position_embeddings=512,
        initializer_range=init,
    )
    torch.manual_seed(seed)
    model = MistralForCausalLM(cfg).eval()
    round_linear_weights_to_fp16(model)
    return model
