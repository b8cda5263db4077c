"""deployers/local"""
