"""What comes in: file imports (with the column map), API feature writes, CAP 1.2, drawings, exports.
"""
