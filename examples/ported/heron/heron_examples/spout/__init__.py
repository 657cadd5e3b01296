"""example spouts"""
__all__ = ['word_spout', 'multi_stream_spout']

from .word_spout import WordSpout
from .multi_stream_spout import MultiStreamSpout
