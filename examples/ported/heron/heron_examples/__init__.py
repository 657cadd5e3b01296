"""Example heron topologies"""
