"""What the web page needs to explore a served version: id and title search, random users,
watch histories with genre shares, and each user's pick-entropy percentile.

`index` precomputes per version (at load time, next to the picks); `schemas` holds the
response models of `app.routes.explore`.
"""
