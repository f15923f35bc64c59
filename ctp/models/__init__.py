"""The networks a planner is made of: the EDM teacher and CTM student maths (``edm``,
``ctm``), the value network, the inverse dynamics, and ``builder``, which builds and loads any
of them."""
