// The strong-lensing image simulator: an SIE main halo with external shear, subhalos as point
// masses (DeepLense's choice) or truncated NFW, an elliptical Sersic source, a Gaussian PSF and
// Poisson counts (lensing_physics.md). Image i of a run depends only on (seed, i), so the output is
// byte-identical whatever the number of threads. Presets: `model1` (the recipe behind the real
// DeepLense Test III data, as far as it is known) and `varied` (lens, shear and source varied).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace halo::data::lens {

enum class SubhaloProfile { point_mass, tnfw };

struct SimConfig {
  std::string preset = "model1";
  int size = 150;               // pixels per side
  double pixel_scale = 0.05;    // arcsec per pixel
  int supersampling = 1;        // sub-pixels per pixel side
  double z_lens = 0.5, z_source = 1.0;
  // Main halo: mass drawn log-uniform in [mass_min, mass_max] (equal: fixed), SIE theta_E from
  // DeepLenseSim's formula; ellipticity and shear uniform in the given ranges.
  double main_mass_min = 1e12, main_mass_max = 1e12;
  double e1_min = 0.1, e1_max = 0.1, e2_min = 0.0, e2_max = 0.0;
  double gamma1_min = 0.05, gamma1_max = 0.05, gamma2_min = 0.0, gamma2_max = 0.0;
  // Subhalos: N ~ Poisson(mean_subhalos), masses with pdf ~ m^mass_slope on [m_min, m_max], at
  // radius U(r_min, r_max) arcsec and angle U(0, 2 pi) about the lens centre.
  SubhaloProfile subhalo_profile = SubhaloProfile::point_mass;
  double mean_subhalos = 25, sub_mass_min = 1e6, sub_mass_max = 1e10, mass_slope = -0.85;
  bool subhalos_scale_with_mass = false;  // mean count = mean_subhalos * main mass / 1e12
  double sub_r_min = 0.25, sub_r_max = 2.0;
  double tnfw_concentration = 15, tnfw_tau = 5;  // TNFW option: c of M200 and r_trunc = tau Rs
  // Label: f_sub = sum of subhalo masses / (label_mass_factor * main halo mass).
  double label_mass_factor = 1.046;
  // Source (Sersic): amplitude, radius, index, ellipticity; centre U(-source_offset, source_offset)^2.
  double source_amp = 20, source_r = 0.25, source_n = 1.0;
  double source_e1_min = -0.1, source_e1_max = -0.1, source_e2_min = 0.1, source_e2_max = 0.1;
  double source_offset = 0.35;
  double psf_fwhm = 0.087, psf_truncation = 3;
  double log10_exposure_min = 3.0, log10_exposure_max = 3.5;  // seconds
  double background_rms = 0.01;
};

// "model1" or "varied" (std::invalid_argument naming the valid ones otherwise).
SimConfig preset_config(const std::string& name);
const std::vector<std::string>& preset_names();
// Every setting as (name, value) text pairs, for HDF5 attributes and logs.
std::vector<std::pair<std::string, std::string>> config_settings(const SimConfig& c);

// Everything drawn for one image (the per-image parameter table of a dataset).
struct LensParams {
  double main_mass = 0, theta_e = 0, e1 = 0, e2 = 0, gamma1 = 0, gamma2 = 0;
  double source_x = 0, source_y = 0, source_e1 = 0, source_e2 = 0;
  double n_sub = 0, sub_mass_sum = 0, exposure = 0, label = 0;
  std::vector<double> sub_mass, sub_x, sub_y;  // not in the table (variable length)
};
const std::vector<std::string>& param_names();   // names of the columns of param_values()
std::vector<double> param_values(const LensParams& p);

struct SimImage {
  std::vector<int64_t> counts;  // size*size, row-major, row 0 at the lowest y
  double label = 0;
  LensParams params;
};

class Simulator {
 public:
  explicit Simulator(SimConfig config);
  const SimConfig& config() const { return config_; }
  // Only the random draws (no rendering): fast, for label statistics.
  LensParams draw_params(uint64_t seed, int64_t index) const;
  // The noiseless model image (flux per pixel per second, after the PSF) for given parameters.
  std::vector<double> render(const LensParams& p) const;
  SimImage simulate(uint64_t seed, int64_t index) const;
  // Images first .. first+count-1 with `threads` threads (0 = all cores).
  void simulate_batch(uint64_t seed, int64_t first, int64_t count, int threads, std::vector<SimImage>& out) const;

 private:
  // Einstein radius (DeepLenseSim's formula) of a point mass M: theta_E = theta_e_1e12 sqrt(M/1e12).
  double theta_e(double mass) const { return theta_e_1e12_ * std::sqrt(mass / 1e12); }
  SimConfig config_;
  double sigma_cr_arcsec2_;
  double theta_e_1e12_;
};

// A counter-based random stream (splitmix64): the same (seed, index, stream) gives the same numbers
// on every platform; the samplers below are written out so as not to depend on the C++ library.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t index, uint64_t stream);
  uint64_t next_u64();
  double uniform();                      // [0, 1)
  double uniform(double lo, double hi);
  double normal();                       // Box-Muller
  int64_t poisson(double lambda);        // exact: inversion (small) or PTRS (Hormann 1993)

 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// scipy.ndimage.gaussian_filter(image, sigma_pixels, mode='nearest', truncate=truncation) on a
// row-major h x w image, in place.
void gaussian_filter(std::vector<double>& image, int h, int w, double sigma_pixels, double truncation);

}  // namespace halo::data::lens
