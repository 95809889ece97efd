"""The contract between the graphs dfstream writes and the stream that runs them, at the bottom of the
import graph: the shapes that flow (``types``), the ONNX metadata schema (``metadata``), how a face is
cropped for a model (``crop_policy``), the file names of each graph's variants (``file_names``) and the
named errors every layer raises and the CLI prints in one line (``exceptions``). ``export/`` writes to it
and ``stream/`` reads from it; it imports nothing of the project outside itself."""
