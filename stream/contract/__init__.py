"""What every layer of dfstream agrees on, at the bottom of the import graph: the shapes that flow
(``types``), the ONNX metadata schema (``metadata``), how a face is cropped for a model (``crop_policy``),
the file names of each graph's variants (``file_names``) and which variants exist and run where
(``variants``), the named errors every layer raises and the CLI
prints in one line (``exceptions``), and where the bundled assets lie (``paths``). ``export/`` writes to
it and ``stream/`` reads from it; it imports nothing of the project outside itself."""
