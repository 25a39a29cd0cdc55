"""What the server reads: layer queries, analysis candidate sets, the live situation, history and the
store as it was at a past time, the situation report's data.
"""
