"""Trained memory cells: episodes that recall can reach from cues that do not look like them.

A cell is one stored memory (its text verbatim, with a checksum) plus what training
adds to it:

- **keys**: the memory's own vector, its keywords, and one vector per fragment of its
  text (a few sentences each), so a question about one detail of a long episode is
  not drowned by the rest of it; a cell scores the best of its keys;
- **an adapter**: one small residual linear map of the query vector, trained with a
  contrastive loss over all cells of the workspace, so a cue moves towards the cell it
  belongs to and away from the confusable ones (same people, same places).

Training cues come from the episodes themselves (keywords, sentences, sentences with
half their words dropped and shuffled); a quarter of them is held out. The trained
cells are switched on only if hybrid recall with them beats plain hybrid recall on
those held-out cues (`gate.py`); otherwise the workspace keeps plain search.
"""
