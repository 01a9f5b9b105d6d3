package jobs

import (
	"slices"
	"strings"
	"testing"
)

// A job file as the reference's README shows them: a description, scheduler
// fields, and jobs of one command line or several.
const file = `description: SmoothAdv CIFAR-10
target:
  vc: resrch
  cluster: rr1
jobs:
- name: PGD_1step_eps64_noise0.12
  sku: G1
  id: 17
  command:
  - python code/train_pgd.py cifar10 cifar_resnet110 model_output_dir --batch 256 --noise_sd 0.12 --gpu 0 --lr_step_size 50 --epochs 150 --adv-training --attack PGD --num-steps 1 --epsilon 64
  - python code/certify.py cifar10 model_output_dir/checkpoint.pth.tar 0.12 certify/noise_0.12 --skip 20 --batch 400
- name: predict
  command: python -u code/predict.py cifar10 "my model.pth.tar" 0.25 'predict dir' --N 1000
`

func TestParse(t *testing.T) {
	if !IsJobsFile([]byte(file)) || IsJobsFile([]byte("version: 1\nname: x\n")) {
		t.Error("IsJobsFile tells a job file from an experiment wrongly")
	}
	jobs, err := Parse([]byte(file), "jobs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].Name != "PGD_1step_eps64_noise0.12" || len(jobs[0].Commands) != 2 || len(jobs[1].Commands) != 1 {
		t.Fatalf("jobs %+v", jobs)
	}
	for _, c := range []struct {
		got  []string
		want string
	}{
		{jobs[0].Commands[0].Args, "train|cifar10|cifar_resnet110|model_output_dir|--batch|256|--noise_sd|0.12|--gpu|0|--lr_step_size|50|--epochs|150|--adv-training|--attack|PGD|--num-steps|1|--epsilon|64"},
		{jobs[0].Commands[1].Args, "certify|cifar10|model_output_dir/checkpoint.pth.tar|0.12|certify/noise_0.12|--skip|20|--batch|400"},
		{jobs[1].Commands[0].Args, "predict|cifar10|my model.pth.tar|0.25|predict dir|--N|1000"},
	} {
		if got := strings.Join(c.got, "|"); got != c.want {
			t.Errorf("args %s, want %s", got, c.want)
		}
	}
	for text, want := range map[string]string{
		"jobs:\n- name: a\n  command: python code/analyze.py x\n":                                   "the script code/analyze.py is not one smoothadv runs",
		"jobs:\n- name: a\n  command: ls -l\n":                                                      "no python script in it",
		"jobs:\n- name: a/b\n  command: python certify.py\n":                                        `name "a/b", want a folder name`,
		"jobs:\n- name: a\n  command: python certify.py 'x\n":                                       "an unclosed quote",
		"jobs:\n- name: a\n  command: python certify.py\n- name: a\n  command: python certify.py\n": "job a: the name is taken",
		"jobs: []\n": "no jobs",
	} {
		if _, err := Parse([]byte(text), "j.yaml"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
	if words, _ := split(`a "b c" 'd\e' f\ g`); !slices.Equal(words, []string{"a", "b c", `d\e`, "f g"}) {
		t.Errorf("split: %q", words)
	}
}
