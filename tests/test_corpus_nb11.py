"""Notebook 11's slip corpus (tests/corpus_nb11.py): every right answer passes, every wrong one fails, named."""

from checkcontract import corpus_from, corpus_tests
from corpus_nb11 import RIGHT, WRONG

CORPUS = corpus_from("nb11", RIGHT, WRONG)

(test_right_answers_pass, test_wrong_answers_fail_and_are_named, test_most_slips_are_named,
 test_corpus_is_big_enough) = corpus_tests(CORPUS)
